// Shared behaviour: refusals from the server show in #flash; evidence opens large in a dialog.
document.addEventListener("click", function (ev) {
  var img = ev.target.closest && ev.target.closest("img[data-large]");
  if (!img) return;
  var dlg = document.getElementById("large");
  if (!dlg) return;
  dlg.querySelector("img").src = img.getAttribute("data-large");
  dlg.querySelector(".caption").textContent = img.getAttribute("data-caption") || "";
  dlg.showModal();
});
